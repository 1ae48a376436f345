# ptlab's container image, installed with the README's two commands (set-up and test); the
# Kubernetes manifest (deploy/k8s/explore-job.yaml) and any batch engine run shards in it.
FROM node:20-bookworm-slim
WORKDIR /ptlab
COPY package.json package-lock.json ./
COPY . .
# npm ci builds dist/ (the prepare script); the C compiler builds the real-kernel helper.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && npm ci --no-audit --no-fund
ENTRYPOINT ["npx", "ptlab"]
CMD ["--help"]
