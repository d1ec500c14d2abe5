package state

import (
	"bytes"
	"os"
	"strconv"
)

// procStat reads a process's state letter and start time (clock ticks since boot,
// field 22 of /proc/PID/stat); ok is false when there is no such process.
func procStat(pid int) (state byte, start uint64, ok bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:]) // fields[0] is field 3
	if len(fields) < 20 || len(fields[0]) == 0 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64)
	return fields[0][0], start, err == nil
}

// StartTime returns the start time of pid, 0 if there is no such process.
func StartTime(pid int) uint64 {
	_, start, _ := procStat(pid)
	return start
}

// Alive reports whether pid is still the process that started at start (not a reused
// pid) and is not a zombie.
func Alive(pid int, start uint64) bool {
	st, s, ok := procStat(pid)
	return ok && st != 'Z' && s == start
}
