// Package shmsys holds the system calls shared-memory links are made of:
// memfd segments, futex wait and wake, SO_PEERCRED and SCM_RIGHTS. Linux
// only; elsewhere each returns ErrUnsupported. It is shared by shmbus and
// its benchmark, internal/bench/shmbench.
package shmsys
