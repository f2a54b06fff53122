// Command shmctl lists, inspects and removes shmkit segments in /dev/shm.
//
// Usage:
//
//	shmctl ls                       list segments (name, size, kind, type, state, creator)
//	shmctl inspect NAME...          print every header field of the named segments
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
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/shmkit/shmkit/shm"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: shmctl <command> [arguments]

commands:
  ls                       list shmkit segments in /dev/shm
  inspect NAME...          print the header of each named segment
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
		if len(args) != 0 {
			break
		}
		return ls(stdout, stderr)
	case "inspect":
		if len(args) == 0 {
			break
		}
		return inspect(args, stdout, stderr)
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

func ls(stdout, stderr io.Writer) int {
	infos, err := shm.List()
	if err != nil {
		fmt.Fprintln(stderr, "shmctl:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tKIND\tTYPE\tSTATE\tCREATOR\tMODE")
	for _, in := range infos {
		if in.Err != nil {
			// %q: a file that is not ours may have any name, control characters included.
			fmt.Fprintf(tw, "%q\t%d\t-\t-\t-\t-\t%v\t(%q)\n", in.Name, in.FileSize, in.Mode, in.Err.Error())
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\t%s\t%v\n", in.Name, in.Size, in.Kind, in.Type, in.State, creator(in), in.Mode)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

func creator(in shm.Info) string {
	if in.CreatorAlive {
		return fmt.Sprintf("%d (alive)", in.CreatorPid)
	}
	return fmt.Sprintf("%d (dead)", in.CreatorPid)
}

func inspect(names []string, stdout, stderr io.Writer) int {
	code := 0
	for i, name := range names {
		in, err := shm.Inspect(name)
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "name:      %s\npath:      %s\n", in.Name, in.Path)
		if err != nil {
			fmt.Fprintln(stderr, "shmctl:", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "mode:      %v\nfile size: %d\nsize:      %d\nkind:      %v\ntype:      %v\nparams:    %d %d\nstate:     %v\ncreator:   %s, start time %d\n",
			in.Mode, in.FileSize, in.Size, in.Kind, in.Type, in.Params[0], in.Params[1], in.State, creator(in), in.CreatorStart)
	}
	return code
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
	mapped, unreadable := mappedFiles()
	if unreadable > 0 {
		fmt.Fprintf(stderr, "shmctl: note: could not read the mappings of %d processes; segments they map may be listed\n", unreadable)
	}
	if procHidesPids() {
		fmt.Fprintln(stderr, "shmctl: note: /proc is mounted with hidepid: other users' processes are invisible, so segments they created or map may be listed")
	}
	code := 0
	for _, in := range infos {
		if ok, _ := path.Match(pattern, in.Name); !ok || in.Err != nil || in.CreatorAlive || mapped[in.Inode] {
			continue
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

// mappedFiles returns the inode numbers of the /dev/shm files mapped by
// any process whose /proc/PID/maps is readable, and how many processes'
// maps were not. Inodes, not paths: a process mapping a segment it
// received as a descriptor from its creator (Send, ExtraFiles) sees the
// creator's unnamed O_TMPFILE path, "/dev/shm/#INODE (deleted)".
func mappedFiles() (map[uint64]bool, int) {
	mapped := map[uint64]bool{}
	unreadable := 0
	maps, _ := filepath.Glob("/proc/[0-9]*/maps")
	for _, m := range maps {
		f, err := os.Open(m)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				unreadable++
			}
			continue
		}
		sc := bufio.NewScanner(f)
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
		f.Close()
	}
	return mapped, unreadable
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
