package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Filter is a compiled profile, ready to install.
type Filter struct {
	Program Program
	// Flags are SECCOMP_FILTER_FLAG_* values beyond TSYNC, which Install always adds.
	Flags uint32
}

// Program is classic BPF in the kernel's struct sock_filter layout.
type Program []unix.SockFilter

// sockFilterSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k.
const sockFilterSize = 8

// MarshalBinary encodes the filter as the launcher sends it to the container's init:
// the flags, then the instructions as the kernel lays them out, all native-endian.
func (f *Filter) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 4+len(f.Program)*sockFilterSize)
	b = binary.NativeEndian.AppendUint32(b, f.Flags)
	for _, ins := range f.Program {
		b = binary.NativeEndian.AppendUint16(b, ins.Code)
		b = append(b, ins.Jt, ins.Jf)
		b = binary.NativeEndian.AppendUint32(b, ins.K)
	}
	return b, nil
}

// UnmarshalBinary is the inverse of MarshalBinary.
func (f *Filter) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || (len(b)-4)%sockFilterSize != 0 || (len(b)-4)/sockFilterSize > maxInsns || len(b) == 4 {
		return fmt.Errorf("seccomp: a filter of %d bytes is not flags and 1 to %d instructions", len(b), maxInsns)
	}
	f.Flags = binary.NativeEndian.Uint32(b)
	b = b[4:]
	f.Program = make(Program, len(b)/sockFilterSize)
	for i := range f.Program {
		ins := b[i*sockFilterSize:]
		f.Program[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(ins), Jt: ins[2], Jf: ins[3], K: binary.NativeEndian.Uint32(ins[4:])}
	}
	return nil
}
