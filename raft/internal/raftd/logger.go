package raftd

import (
	"fmt"
	"log"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// leveledLogger implements raft.Logger on the standard log package, writing
// to stderr with the node id in every line.
type leveledLogger struct {
	l     *log.Logger
	level int // 0 debug, 1 info, 2 warn, 3 error
}

func parseLevel(s string) (int, error) {
	switch strings.ToLower(s) {
	case "debug":
		return 0, nil
	case "info", "":
		return 1, nil
	case "warn", "warning":
		return 2, nil
	case "error":
		return 3, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
}

func newLogger(id uint64, level int) *leveledLogger {
	return &leveledLogger{l: log.New(os.Stderr, fmt.Sprintf("baton-raftd[%d] ", id), log.LstdFlags|log.Lmicroseconds), level: level}
}

func (g *leveledLogger) out(lv int, tag, s string) {
	if lv >= g.level {
		g.l.Output(3, tag+" "+s)
	}
}

func (g *leveledLogger) Debug(v ...any)              { g.out(0, "DEBUG", fmt.Sprint(v...)) }
func (g *leveledLogger) Debugf(f string, v ...any)   { g.out(0, "DEBUG", fmt.Sprintf(f, v...)) }
func (g *leveledLogger) Info(v ...any)               { g.out(1, "INFO", fmt.Sprint(v...)) }
func (g *leveledLogger) Infof(f string, v ...any)    { g.out(1, "INFO", fmt.Sprintf(f, v...)) }
func (g *leveledLogger) Warning(v ...any)            { g.out(2, "WARN", fmt.Sprint(v...)) }
func (g *leveledLogger) Warningf(f string, v ...any) { g.out(2, "WARN", fmt.Sprintf(f, v...)) }
func (g *leveledLogger) Error(v ...any)              { g.out(3, "ERROR", fmt.Sprint(v...)) }
func (g *leveledLogger) Errorf(f string, v ...any)   { g.out(3, "ERROR", fmt.Sprintf(f, v...)) }
func (g *leveledLogger) Fatal(v ...any)              { g.out(4, "FATAL", fmt.Sprint(v...)); os.Exit(1) }
func (g *leveledLogger) Fatalf(f string, v ...any) {
	g.out(4, "FATAL", fmt.Sprintf(f, v...))
	os.Exit(1)
}
func (g *leveledLogger) Panic(v ...any) { s := fmt.Sprint(v...); g.out(4, "PANIC", s); panic(s) }
func (g *leveledLogger) Panicf(f string, v ...any) {
	s := fmt.Sprintf(f, v...)
	g.out(4, "PANIC", s)
	panic(s)
}

// newZap returns the logger etcd's wal and snap packages want: warnings and
// errors to stderr (everything at --log-level=debug).
func newZap(level int) *zap.Logger {
	zl := zapcore.WarnLevel
	if level == 0 {
		zl = zapcore.DebugLevel
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zl)
	cfg.Encoding = "console"
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return lg
}
