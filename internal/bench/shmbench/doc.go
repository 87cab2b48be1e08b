// Package shmbench measures shmbus between two processes against the same
// bus over a Unix socket (netbus), for `xbus bench shm`, and the raw floors
// under it (a shared cache line, futex, eventfd). It lives apart from
// shmbus so that the transport itself does not import netbus.
package shmbench
