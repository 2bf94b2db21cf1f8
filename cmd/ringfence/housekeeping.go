package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/ringfence/ringfence/accesslog"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
)

// logsLife is how long access and error logs are kept (privacy.AccessLogs).
const logsLife = 7 * 24 * time.Hour

// housekeep runs the scheduled jobs until ctx ends: a signed audit
// checkpoint every c.Housekeeping.Checkpoint (10m) and the retention purge
// every c.Housekeeping.Every (1h), the first of each soon after start.
func (m *Main) housekeep(ctx context.Context) {
	every := parseDuration(m.Config.Housekeeping.Every, time.Hour)
	checkpoint := parseDuration(m.Config.Housekeeping.Checkpoint, 10*time.Minute)
	purge := time.NewTimer(time.Minute)
	if m.Config.Housekeeping.Every == "off" {
		purge.Stop()
	}
	cp := time.NewTicker(checkpoint)
	retrain := time.NewTimer(parseDuration(m.Config.Housekeeping.Retrain, time.Hour))
	if r := m.Config.Housekeeping.Retrain; r == "" || r == "off" {
		retrain.Stop()
	}
	defer retrain.Stop()
	defer purge.Stop()
	defer cp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cp.C:
			m.checkpoint(ctx)
			if m.Consortium != nil {
				if err := m.Consortium.FlushImpact(ctx); err != nil && call.ErrorCode(err) != call.NotFound {
					m.Log.Warn("consortium impact not saved; retrying later", "err", err)
				}
			}
		case <-retrain.C:
			m.retrain(ctx)
			retrain.Reset(parseDuration(m.Config.Housekeeping.Retrain, 24*time.Hour))
		case <-purge.C:
			if _, err := m.purge(ctx, false); err != nil {
				m.Log.Error("retention purge failed", "err", err)
			}
			purge.Reset(every)
		}
	}
}

func parseDuration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

// retrain trains every tenant's model on its labelled calls and promotes
// it where it beats the live scoring (node.TrainOptions.Promote).
func (m *Main) retrain(ctx context.Context) {
	ts, err := m.Store.Tenants(ctx)
	if err != nil {
		m.Log.Error("scheduled retrain: cannot list tenants", "err", err)
		return
	}
	for _, t := range ts {
		if !t.DeletedAt.IsZero() {
			continue
		}
		v, err := m.Node.TrainModel(ctx, t.ID, node.TrainOptions{Promote: true})
		switch {
		case call.ErrorCode(err) == call.Conflict:
			m.Log.Info("scheduled retrain skipped", "tenant", t.ID, "why", call.ErrorMessage(err))
		case err != nil:
			m.Log.Error("scheduled retrain failed", "tenant", t.ID, "err", err)
		default:
			m.Log.Info("scheduled retrain", "tenant", t.ID, "version", v.Version, "status", v.Status)
		}
	}
}

// checkpoint signs the audit log's newest entry, if it has any.
func (m *Main) checkpoint(ctx context.Context) {
	if _, err := m.Audit.Checkpoint(ctx); err != nil && call.ErrorCode(err) != call.NotFound {
		m.Log.Error("audit checkpoint failed", "err", err)
	}
}

// RetentionReport is what one retention run removed, per data class.
type RetentionReport struct {
	node.PurgeReport
	AccessLogs int `json:"access_log_files"`
	Consortium int `json:"consortium_reports"`
	// Rewrapped: tenants whose stored values were resealed under their
	// newest key after a rotation.
	Rewrapped map[string]node.RewrapReport `json:"rewrapped,omitempty"`
	// ArchiveDays: yesterday's compliance-archive day chain sealed into
	// the audit log, per tenant (once per day).
	ArchiveDays map[string]node.DayChain `json:"archive_days_sealed,omitempty"`
	Audit       int64                    `json:"audit_entries"`
}

// purge runs retention once: records and the change log (node), access
// and error log files older than 7 days, and audit entries older than the
// audit log's period (only up to a signed checkpoint, so the rest still
// verifies).
func (m *Main) purge(ctx context.Context, dryRun bool) (RetentionReport, error) {
	var rep RetentionReport
	var err error
	if rep.PurgeReport, err = m.Node.PurgeExpired(ctx, dryRun); err != nil {
		return rep, err
	}
	if dryRun {
		return rep, nil
	}
	var errs []error
	if rep.Rewrapped, err = m.Node.RewrapPending(ctx); err != nil {
		errs = append(errs, err)
	}
	if rep.ArchiveDays, err = m.Node.SealClosedArchiveDays(ctx); err != nil {
		errs = append(errs, err)
	}
	if rep.AccessLogs, err = accesslog.Purge(filepath.Join(m.Config.Data, "logs"), time.Now(), logsLife); err != nil {
		errs = append(errs, err)
	}
	if m.Consortium != nil {
		if rep.Consortium, err = m.Consortium.Purge(ctx, "system"); err != nil && call.ErrorCode(err) != call.NotFound {
			errs = append(errs, err)
		}
	}
	info, _ := privacy.Lookup(privacy.AuditLog)
	if rep.Audit, err = m.Audit.Purge(ctx, info.Default.Cutoff(time.Now())); err != nil && call.ErrorCode(err) != call.NotFound {
		errs = append(errs, err)
	}
	m.Log.Info("retention purge", "call_records", rep.total(), "change_log_rows", rep.Changes, "access_log_files", rep.AccessLogs, "audit_entries", rep.Audit)
	return rep, errors.Join(errs...)
}

func (r RetentionReport) total() int64 {
	var n int64
	for _, t := range r.Tenants {
		n += t.Calls
	}
	return n
}
