package mysql

import (
	"context"
	"log/slog"
)

// quietHandler demotes go-mysql's Info records (and its cleanup errors) to Debug: it logs its whole
// configuration and every rotation at Info, which is noise beside Ferry's own
// lines. Its warnings and errors pass unchanged.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, demote(l))
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	if r.Message == "kill connection" {
		// go-mysql kills the old connection on Close; after the server
		// dropped it that fails with "unknown thread id", which is expected.
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

func demote(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

func libraryLogger(log *slog.Logger) *slog.Logger {
	return slog.New(quietHandler{log.Handler()}).With("component", "go-mysql")
}
