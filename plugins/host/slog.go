package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// SlogLogger returns an hclog.Logger that writes to l, for Options.Logger: the bridge between
// go-plugin, which speaks hclog, and an agent that logs through log/slog.
//
// A plugin logs JSON to its stderr through the SDK; go-plugin parses each line back into its
// level, message and fields and hands them to this logger, which writes one slog record per
// line at the same level (hclog's trace is slog.LevelDebug-4), with every field as an
// attribute of its own. The plugin's "@module" field becomes "module", and go-plugin's
// "timestamp" field (the plugin's clock) is dropped, since the record has its own time. The
// name of the hclog logger (go-plugin names a plugin's lines after its binary, the host's own
// lines "plugin-host") is the "logger" attribute.
//
// The levels that pass are those l's handler enables; SetLevel does nothing.
func SlogLogger(l *slog.Logger) hclog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &slogLogger{root: l, l: l}
}

type slogLogger struct {
	root    *slog.Logger // without the name or implied arguments, for ResetNamed
	l       *slog.Logger // root with the implied arguments
	name    string
	implied []any
}

var _ hclog.Logger = (*slogLogger)(nil)

// slogLevel maps an hclog level onto slog's.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo // Info, and NoLevel (a line that named none)
}

// attrs turns hclog's alternating keys and values into slog attributes.
func attrs(args []any) []any {
	out := make([]any, 0, len(args)/2+1)
	for i := 0; i < len(args); i += 2 {
		key := fmt.Sprint(args[i])
		if i+1 == len(args) {
			out = append(out, slog.Any("EXTRA_VALUE_AT_END", args[i])) // hclog's name for it
			break
		}
		switch {
		case key == "timestamp":
			continue
		case strings.HasPrefix(key, "@"):
			key = key[1:]
		}
		out = append(out, slog.Any(key, args[i+1]))
	}
	return out
}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := slogLevel(level)
	ctx := context.Background()
	if !s.l.Enabled(ctx, lv) {
		return
	}
	a := attrs(args)
	if s.name != "" {
		a = append([]any{slog.String("logger", s.name)}, a...)
	}
	s.l.Log(ctx, lv, msg, a...)
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) enabled(level hclog.Level) bool {
	return s.l.Enabled(context.Background(), slogLevel(level))
}

func (s *slogLogger) IsTrace() bool { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool { return s.enabled(hclog.Error) }

func (s *slogLogger) ImpliedArgs() []any { return append([]any(nil), s.implied...) }

func (s *slogLogger) With(args ...any) hclog.Logger {
	c := *s
	c.implied = append(append([]any(nil), s.implied...), args...)
	c.l = s.l.With(attrs(args)...)
	return &c
}

func (s *slogLogger) Name() string { return s.name }

func (s *slogLogger) Named(name string) hclog.Logger {
	c := *s
	if s.name != "" {
		name = s.name + "." + name
	}
	c.name = name
	return &c
}

func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	return &c
}

// SetLevel does nothing: the slog handler decides which levels pass.
func (s *slogLogger) SetLevel(hclog.Level) {}

// GetLevel is the lowest level the slog handler lets through. go-plugin reads it to skip
// parsing the plugin lines that would be dropped anyway.
func (s *slogLogger) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if s.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

// StandardWriter logs each line written to it, at opts.ForceLevel when set and at Info
// otherwise.
func (s *slogLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &lineWriter{log: s, level: level}
}

type lineWriter struct {
	log   *slogLogger
	level hclog.Level
}

func (w *lineWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if s := strings.TrimSpace(string(line)); s != "" {
			w.log.Log(w.level, s)
		}
	}
	return len(b), nil
}
