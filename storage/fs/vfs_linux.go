//go:build linux

package fs

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFile opens name the way os.OpenFile does, without offering the
// descriptor to the runtime's poller: os.OpenFile tries epoll on every
// file, which a regular file or a directory refuses, for four fcntl and
// epoll_ctl calls around each open (two opens per small push). os.NewFile
// checks the flags once and leaves a blocking descriptor blocking, which
// is what os.OpenFile ends up with for these files anyway.
func openFile(name string, flag int, perm os.FileMode) (File, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// syncDir fsyncs directory name through its bare descriptor: three system
// calls where os.Open, Sync and Close made eight.
func syncDir(name string) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(name, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	_, err = ignoringEINTR(func() (int, error) { return 0, syscall.Fsync(fd) })
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: name, Err: err}
	}
	return nil
}

// renameNoReplace is renameat2(RENAME_NOREPLACE): EEXIST (iofs.ErrExist)
// when newpath exists, decided by the kernel in the same call, so
// publishing needs no stat before it (nor os.Rename's own lstat of the
// target). A filesystem or kernel without the flag answers EINVAL or
// ENOSYS: errors.ErrUnsupported, and the caller looks first.
func renameNoReplace(oldpath, newpath string) error {
	_, err := ignoringEINTR(func() (int, error) {
		return 0, unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS):
		return errors.ErrUnsupported
	}
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
