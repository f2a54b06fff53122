// Command shmctl lists, inspects and removes shmkit segments in /dev/shm.
//
// Usage:
//
//	shmctl ls [-json]               list segments (name, size, kind, type, state, creator)
//	shmctl inspect [-json] NAME...  print every header field of the named segments
//	shmctl rm NAME...               unlink the named segments
//	shmctl gc [-delete] [PATTERN]   list segments that look abandoned; -delete removes them
//
// Names are given without the "shmkit." prefix. A segment is abandoned
// when its header is valid, its creator is dead and no process whose
// mappings shmctl can read maps it. Segments outlive their creators by
// design, so gc only prints candidates unless -delete is given; PATTERN (a
// path.Match glob over names) narrows it further. Processes shmctl cannot
// see (another user's, with /proc mounted hidepid; another pid namespace)
// count neither as creators nor as mappers: gc says so when it can tell.
//
// The type column is the Go type name the creator recorded (value.Value[T],
// array.Array[T] and typed queues record T's), else the type descriptor
// (size, alignment, fingerprint), else "untyped".
//
// With -json, ls prints a JSON array with one object per segment and
// inspect an array with one object per name, each with the fields of
// shm.Info:
//
//	{"name", "path", "mode": strings, "inode", "file_size", "size": ints,
//	 "kind": string, "type": {"size", "align": ints, "fingerprint": string (hex)},
//	 "type_name": string, "params": [int, int], "state": string,
//	 "creator_pid", "creator_start": ints, "creator_alive": bool,
//	 "error": string ("" for a valid header; else only name, path, mode,
//	 inode and file_size are filled in)}
//
// # Processes whose mappings cannot be read
//
// gc reads /proc/PID/maps of every process. The kernel lets a process
// read another's maps only when it passes a ptrace read-access check, and
// root can fail it too: for a process protected by a security module or
// a sandbox (the init process of some container and micro-VM runtimes),
// for one in a user namespace where shmctl lacks CAP_SYS_PTRACE, or when
// shmctl runs without CAP_SYS_PTRACE. Such a process could map a segment
// that gc would then list as abandoned, so when gc lists any segment it
// names those processes (pid, command, error); when it lists none, they
// change nothing and it says nothing. Processes that exit while gc reads
// them are not counted.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/shmkit/shmkit/shm"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: shmctl <command> [arguments]

commands:
  ls [-json]               list shmkit segments in /dev/shm
  inspect [-json] NAME...  print the header of each named segment
  rm NAME...               unlink the named segments
  gc [-delete] [PATTERN]   list segments whose creator is dead and that no
                           process maps; with -delete, unlink them
                           (PATTERN is a glob over names, default "*")

Names are given without the "shmkit." prefix.
`

// run is main without os.Exit, for tests. It returns the exit code: 0 on
// success, 1 when an operation failed, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ls", "list":
		asJSON, args, ok := jsonFlag(args)
		if !ok || len(args) != 0 {
			break
		}
		return ls(asJSON, stdout, stderr)
	case "inspect":
		asJSON, args, ok := jsonFlag(args)
		if !ok || len(args) == 0 {
			break
		}
		return inspect(args, asJSON, stdout, stderr)
	case "rm":
		if len(args) == 0 {
			break
		}
		return rm(args, stderr)
	case "gc":
		return gc(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// jsonFlag parses the flags of ls and inspect (-json only) and returns the
// remaining arguments; ok is false for a bad flag.
func jsonFlag(args []string) (asJSON bool, rest []string, ok bool) {
	fs := flag.NewFlagSet("shmctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	j := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return false, nil, false
	}
	return *j, fs.Args(), true
}

func ls(asJSON bool, stdout, stderr io.Writer) int {
	infos, err := shm.List()
	if err != nil {
		fmt.Fprintln(stderr, "shmctl:", err)
		return 1
	}
	if asJSON {
		return writeJSON(stdout, stderr, infos)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tKIND\tTYPE\tSTATE\tCREATOR\tMODE")
	for _, in := range infos {
		if in.Err != nil {
			// %q: a file that is not ours may have any name, control characters included.
			fmt.Fprintf(tw, "%q\t%d\t-\t-\t-\t-\t%v\t(%q)\n", in.Name, in.FileSize, in.Mode, in.Err.Error())
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%v\t%s\t%v\n", in.Name, in.Size, in.Kind, typeText(in), in.State, creator(in), in.Mode)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

// typeText names a segment's element type: the Go type name its creator
// recorded, else its descriptor ("untyped" for none). A name that is not
// printable text is quoted: it comes from the segment, which anyone with
// write access may have filled.
func typeText(in shm.Info) string {
	if in.TypeName == "" {
		return in.Type.String()
	}
	return printable(in.TypeName)
}

// printable returns s, or s quoted when it has characters that are not
// printable (or spaces, which would break the columns).
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

func creator(in shm.Info) string {
	if in.CreatorAlive {
		return fmt.Sprintf("%d (alive)", in.CreatorPid)
	}
	return fmt.Sprintf("%d (dead)", in.CreatorPid)
}

func inspect(names []string, asJSON bool, stdout, stderr io.Writer) int {
	code := 0
	var infos []shm.Info
	for i, name := range names {
		in, err := shm.Inspect(name)
		if err != nil {
			fmt.Fprintln(stderr, "shmctl:", err)
			code = 1
			if in.Err == nil {
				in.Err = err
			}
		}
		if asJSON {
			infos = append(infos, in)
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "name:      %s\npath:      %s\n", in.Name, in.Path)
		if err != nil {
			continue
		}
		name := in.TypeName
		if name == "" {
			name = "- (not recorded)"
		} else {
			name = printable(name)
		}
		fmt.Fprintf(stdout, "mode:      %v\nfile size: %d\nsize:      %d\nkind:      %v\ntype:      %v\ntype name: %s\nparams:    %d %d\nstate:     %v\ncreator:   %s, start time %d\n",
			in.Mode, in.FileSize, in.Size, in.Kind, in.Type, name, in.Params[0], in.Params[1], in.State, creator(in), in.CreatorStart)
	}
	if asJSON {
		if c := writeJSON(stdout, stderr, infos); c != 0 {
			return c
		}
	}
	return code
}

// InfoJSON is a segment's shm.Info as -json prints it.
type InfoJSON struct {
	Name         string    `json:"name"`
	Path         string    `json:"path"`
	Mode         string    `json:"mode"`
	Inode        uint64    `json:"inode"`
	FileSize     int64     `json:"file_size"`
	Size         int       `json:"size"`
	Kind         string    `json:"kind"`
	Type         TypeJSON  `json:"type"`
	TypeName     string    `json:"type_name"`
	Params       [2]uint64 `json:"params"`
	State        string    `json:"state"`
	CreatorPid   int       `json:"creator_pid"`
	CreatorStart uint64    `json:"creator_start"`
	CreatorAlive bool      `json:"creator_alive"`
	Error        string    `json:"error"`
}

// TypeJSON is a shm.TypeDesc as -json prints it. The fingerprint is a hex
// string: a JSON number would lose its low bits in most decoders.
type TypeJSON struct {
	Size        uint32 `json:"size"`
	Align       uint32 `json:"align"`
	Fingerprint string `json:"fingerprint"`
}

// infoJSON converts in for -json. A segment whose header is not valid has
// only the fields Info fills in for it, and its error.
func infoJSON(in shm.Info) InfoJSON {
	j := InfoJSON{Name: in.Name, Path: in.Path, Mode: in.Mode.String(), Inode: in.Inode, FileSize: in.FileSize}
	if in.Err != nil {
		j.Error = in.Err.Error()
		return j
	}
	j.Size, j.Kind, j.TypeName, j.Params, j.State = in.Size, in.Kind.String(), in.TypeName, in.Params, in.State.String()
	j.Type = TypeJSON{Size: in.Type.Size, Align: in.Type.Align, Fingerprint: fmt.Sprintf("0x%016x", in.Type.Fingerprint)}
	j.CreatorPid, j.CreatorStart, j.CreatorAlive = in.CreatorPid, in.CreatorStart, in.CreatorAlive
	return j
}

// writeJSON prints infos as one JSON array (never null).
func writeJSON(stdout, stderr io.Writer, infos []shm.Info) int {
	out := make([]InfoJSON, 0, len(infos))
	for _, in := range infos {
		out = append(out, infoJSON(in))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "shmctl:", err)
		return 1
	}
	return 0
}

func rm(names []string, stderr io.Writer) int {
	code := 0
	for _, name := range names {
		if err := shm.Unlink(name); err != nil {
			fmt.Fprintln(stderr, "shmctl:", err)
			code = 1
		}
	}
	return code
}

func gc(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	del := fs.Bool("delete", false, "unlink the abandoned segments instead of listing them")
	if err := fs.Parse(args); err != nil || fs.NArg() > 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	pattern := "*"
	if fs.NArg() == 1 {
		pattern = fs.Arg(0)
		if _, err := path.Match(pattern, ""); err != nil {
			fmt.Fprintln(stderr, "shmctl: bad pattern:", err)
			return 2
		}
	}
	infos, err := shm.List()
	if err != nil {
		fmt.Fprintln(stderr, "shmctl:", err)
		return 1
	}
	mapped, unreadable := procMaps()
	hidden := procHidesPids()
	code := 0
	noted := false
	for _, in := range infos {
		if ok, _ := path.Match(pattern, in.Name); !ok || in.Err != nil || in.CreatorAlive || mapped[in.Inode] {
			continue
		}
		// What gc could not see matters only for the segments it
		// lists: say it before the first one, and only then.
		if !noted {
			noted = true
			noteUnseen(stderr, unreadable, hidden, os.Geteuid() == 0)
		}
		if !*del {
			fmt.Fprintln(stdout, in.Name)
			continue
		}
		if err := shm.Unlink(in.Name); err != nil {
			fmt.Fprintln(stderr, "shmctl:", err)
			code = 1
			continue
		}
		fmt.Fprintln(stdout, "removed", in.Name)
	}
	return code
}

// noteUnseen tells what gc could not see, which could make a segment in
// use look abandoned: processes whose mappings it could not read (each
// named, with why) and, under hidepid, other users' processes.
func noteUnseen(stderr io.Writer, unreadable []unreadableProc, hidden, root bool) {
	if len(unreadable) > 0 {
		var names []string
		for _, p := range unreadable {
			names = append(names, p.String())
		}
		what := "process"
		if len(unreadable) > 1 {
			what = fmt.Sprintf("%d processes", len(unreadable))
		}
		fmt.Fprintf(stderr, "shmctl: note: could not read the mappings of %s: %s; a segment mapped only there would be listed below as abandoned\n",
			what, strings.Join(names, ", "))
		if root && slices.ContainsFunc(unreadable, func(p unreadableProc) bool { return errors.Is(p.err, fs.ErrPermission) }) {
			fmt.Fprintln(stderr, "shmctl: note: root too is refused a process's maps when it fails the kernel's ptrace read check: "+
				"a process guarded by a security module or sandbox (as some containers' and micro-VMs' init is), "+
				"one in another user namespace, or shmctl running without CAP_SYS_PTRACE")
		}
	}
	if hidden {
		fmt.Fprintln(stderr, "shmctl: note: /proc is mounted with hidepid: other users' processes are invisible, so segments they created or map may be listed")
	}
}

// unreadableProc is a process whose mappings gc could not read.
type unreadableProc struct {
	pid  int
	comm string // its command name, "" if unknown
	err  error
}

// String says "pid 1 (init): permission denied".
func (p unreadableProc) String() string {
	s := "pid " + strconv.Itoa(p.pid)
	if p.comm != "" {
		s += " (" + printable(p.comm) + ")"
	}
	msg := p.err.Error()
	var pe *fs.PathError
	if errors.As(p.err, &pe) {
		msg = pe.Err.Error() // the path is /proc/PID/maps: the pid says it
	}
	return s + ": " + msg
}

// procMaps reads the mappings of every process in /proc; tests replace
// it.
var procMaps = func() (map[uint64]bool, []unreadableProc) {
	return mappedFiles("/proc", func(name string) (io.ReadCloser, error) { return os.Open(name) })
}

// gone reports whether err says the process exited while it was read:
// its /proc directory vanished (ENOENT) or its mm did (ESRCH).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// mappedFiles returns the inode numbers of the /dev/shm files mapped by
// any process whose maps (proc/PID/maps, opened with open) are readable,
// and the processes whose maps were not. Inodes, not paths: a process
// mapping a segment it received as a descriptor from its creator (Send,
// ExtraFiles) sees the creator's unnamed O_TMPFILE path,
// "/dev/shm/#INODE (deleted)". A process that exits while it is read is
// neither.
func mappedFiles(proc string, open func(string) (io.ReadCloser, error)) (map[uint64]bool, []unreadableProc) {
	mapped := map[uint64]bool{}
	var unreadable []unreadableProc
	maps, _ := filepath.Glob(filepath.Join(proc, "[0-9]*", "maps"))
	for _, m := range maps {
		dir := filepath.Dir(m)
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		f, err := open(m)
		if err == nil {
			err = scanMaps(f, mapped)
			f.Close()
		}
		if err != nil && !gone(err) {
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			unreadable = append(unreadable, unreadableProc{pid: pid, comm: string(bytes.TrimSpace(comm)), err: err})
		}
	}
	return mapped, unreadable
}

// scanMaps adds to mapped the inode of every /dev/shm file that a maps
// text maps.
func scanMaps(r io.Reader, mapped map[uint64]bool) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 6 || !bytes.HasPrefix(fields[5], []byte("/dev/shm/")) {
			continue
		}
		if ino, err := strconv.ParseUint(string(fields[4]), 10, 64); err == nil {
			mapped[ino] = true
		}
	}
	return sc.Err()
}

// procHidesPids reports whether /proc is mounted with hidepid (other users'
// processes, and so their creators' liveness and their mappings, are
// invisible).
func procHidesPids() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	return err == nil && mountinfoHidesPids(b)
}

// mountinfoHidesPids reports whether a /proc/self/mountinfo text mounts
// /proc with hidepid set to anything but 0/off.
func mountinfoHidesPids(b []byte) bool {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		f := bytes.Fields(line)
		if len(f) > 4 && string(f[4]) == "/proc" && bytes.Contains(line, []byte("hidepid=")) &&
			!bytes.Contains(line, []byte("hidepid=0")) && !bytes.Contains(line, []byte("hidepid=off")) {
			return true
		}
	}
	return false
}
