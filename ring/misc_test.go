package ring

import (
	"fmt"
	"github.com/shmkit/shmkit/shm"
	"os"
)

type osFile = os.File

func osNewFile(fd uintptr) *os.File { return os.NewFile(fd, "fd") }

func fmtSscanf(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }

var errVersionForFuzz = shmErrVersion
var shmErrVersion = shm.ErrVersion
