/**
 * include/uapi/asm-generic/errno-base.h: the errnos ptlab's syscalls return (negated), one place
 * for all of them. ERRNO maps each name to its value for scenario programs' `expect`.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EFBIG = 27;
export const ENOSYS = 38;

export const ERRNO: Record<string, number> = {
  EPERM, ENOENT, ESRCH, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, ENODEV, EINVAL, EMFILE, ENOTTY, EFBIG, ENOSYS,
};
