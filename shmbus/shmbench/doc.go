// Package shmbench measures shmbus between two processes against the same
// bus over a Unix socket (netbus), for `xbus bench shm`. It lives apart from
// shmbus so that the transport itself does not import netbus and its
// compression libraries (a transport knows nothing of the others).
package shmbench
