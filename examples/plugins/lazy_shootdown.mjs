// An example model plugin: `ptlab run sga --model ./examples/plugins/lazy_shootdown.mjs`.
//
// A kernel developer's own design, with their own bug to look for: map-shared-pt (Khalid Aziz's
// MAP_SHARED_PT RFC: a host mm holds the shared PTE tables, guests copy its PMD entries) whose
// shootdowns are made "lazy": a change to the host's tables flushes only the CPUs that run the
// host mm itself, on the theory that guests pick the change up on their next fault. ptlab's
// checkers say otherwise (`--bug lazy`): a guest CPU keeps translations of entries the host
// changed, and a store through one lands after the change returned (stale-tlb-write), or the
// stale-TLB audit finds the entry at the next barrier.
//
// The module's default export is a factory: ptlab calls it with its model API (the catalog's
// models, MODEL_DEFAULT, the core fault path, errnos, flush-mask helpers) and takes the model
// it returns: { name, rules, bugs, basedOn, create(bug) -> the hooks (see src/mm/model_ops.ts) }.
export default function lazyShootdown(api) {
  const base = api.models['map-shared-pt'];
  return {
    name: 'lazy-shootdown',
    seed: 'an example plugin: map-shared-pt with a choice of shootdown',
    rules: `as map-shared-pt (${base.rules.slice(0, 80)}...); with --bug lazy, a flush of the host mm reaches only the host's own CPUs, not the guests'`,
    // Scenarios written for map-shared-pt run under this model too.
    basedOn: 'map-shared-pt',
    bugs: { lazy: "a change to the host's shared tables flushes only the CPUs running the host mm, not the guests that map its tables" },
    create(bug) {
      const hooks = base.create('');
      if (bug !== 'lazy') return { ...hooks, name: 'lazy-shootdown' };
      // The host mm runs on no CPU of its own: its mm_cpumask alone reaches none of the guests.
      return { ...hooks, name: 'lazy-shootdown', flush_mask: (k, mm) => api.mm_cpumask(k, mm) };
    },
  };
}
