package registry

import (
	"context"
	"strings"
)

// maxAuditRows bounds one Audit answer when the filter sets no Limit.
const maxAuditRows = 10000

func (s *sqlStore) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	for _, c := range []struct {
		col, val string
	}{{"object", f.Object}, {"action", f.Action}, {"actor", f.Actor}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixMicro())
	}
	q := `SELECT id, at, actor, action, object, detail FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > maxAuditRows {
		limit = maxAuditRows
	}
	// Newest limit rows, returned oldest first.
	q = `SELECT * FROM (` + q + ` ORDER BY id DESC LIMIT ?) newest ORDER BY id`
	rows, err := collect(ctx, s.read(), scanAudit, q, append(args, limit)...)
	return rows, s.dbErr("audit", err)
}

func scanAudit(r scanner) (AuditEntry, error) {
	var e AuditEntry
	var at int64
	var detail string
	err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &detail)
	e.At, e.Detail = micros(at), []byte(detail)
	return e, err
}
