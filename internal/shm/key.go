package shm

import (
	"fmt"
	"strings"
	"syscall"
	"unicode/utf8"
)

// shmDir is where Linux keeps POSIX shared memory objects: shm_open(key) opens
// shmDir + key without its leading '/'.
const shmDir = "/dev/shm/"

// maxKeyLen is NAME_MAX: the longest file name under shmDir.
const maxKeyLen = 255

// CheckKey accepts a key as shm_open takes it: an optional leading '/', then one file
// name (no '/', not "." or "..", no NUL) of at most 255 bytes. Anything else could
// reach a file outside the shared memory folder. It returns the file name.
func CheckKey(key string) (string, error) {
	name := strings.TrimPrefix(key, "/")
	switch {
	case name == "":
		return "", invalidf("shared memory key %q is empty", key)
	case strings.ContainsRune(name, '/'):
		return "", invalidf("shared memory key %q is invalid: after an optional leading '/' it must not contain '/'", key)
	case name == "." || name == "..":
		return "", invalidf("shared memory key %q is invalid", key)
	case strings.ContainsRune(name, 0):
		return "", invalidf("shared memory key %q is invalid: it contains a NUL byte", key)
	case len(name) > maxKeyLen:
		return "", invalidf("shared memory key of %d bytes is too long (at most %d)", len(name), maxKeyLen)
	}
	return name, nil
}

// checkName accepts a region name: it is echoed in JSON and used in URLs, so it must be
// non-empty, valid UTF-8 without control characters.
func checkName(name string) error {
	if name == "" {
		return invalidf("shared memory region name is empty")
	}
	if !utf8.ValidString(name) {
		return invalidf("shared memory region name %q is not valid UTF-8", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return invalidf("shared memory region name %q must not contain control characters", name)
		}
	}
	return nil
}

// openObject opens the shared memory object of key read-write, as shm_open(key, O_RDWR)
// does (without O_CREAT: the client made it), and returns it with its size. Like glibc's
// shm_open it refuses symbolic links, and it accepts only regular files, so a key cannot
// make the server map anything but a shared memory object.
func openObject(key, file string) (fd int, size int64, err error) {
	fd, err = syscall.Open(shmDir+file, syscall.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return -1, 0, openError(key, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("shared memory key %q: fstat: %w", key, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return -1, 0, invalidf("shared memory key %q does not name a shared memory object", key)
	}
	return fd, st.Size, nil
}

func openError(key string, err error) error {
	switch err {
	case syscall.ENOENT:
		return invalidf("unable to open shared memory region %q: no such shared memory object (shm_open it first)", key)
	case syscall.ELOOP:
		return invalidf("unable to open shared memory region %q: it is a symbolic link", key)
	case syscall.EACCES, syscall.EPERM:
		return invalidf("unable to open shared memory region %q: permission denied (the server needs read and write access)", key)
	}
	return invalidf("unable to open shared memory region %q: %v", key, err)
}
