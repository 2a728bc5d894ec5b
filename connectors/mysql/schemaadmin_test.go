package mysql

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-cdc/ferry"
)

// TestShowSchemaHistoryBadAt: an `at` that is no FILE:POS is a field error
// naming at, which the admin API answers 400 (not 500) and the CLI prints.
func TestShowSchemaHistoryBadAt(t *testing.T) {
	for _, at := range []string{"42", "mysql-bin.000001:x", "0-1-100"} {
		_, err := ShowSchemaHistory(context.Background(), memHistory{}, "db", "", at)
		var fe *ferry.FieldError
		if !errors.As(err, &fe) || fe.Field != "at" {
			t.Errorf("ShowSchemaHistory(at=%q) = %v, want a field error naming at", at, err)
		}
	}
	if _, err := ShowSchemaHistory(context.Background(), memHistory{}, "db", "", "mysql-bin.000001:4"); err != nil {
		t.Errorf("ShowSchemaHistory(at=FILE:POS) = %v", err)
	}
}
