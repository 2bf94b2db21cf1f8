package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Models is the storage of the learned signal's versioned models (see
// package model): each tenant has a numbered series of trained models, of
// which at most one is live (scores calls) and at most one is shadow
// (evaluated beside the live one and recorded, not acted on). Every other
// version is retired and kept for audit and rollback.
//
// The store treats a model and its evaluation report as opaque JSON. Every
// write appends, in its transaction, one ChangeModel per version whose row
// it inserted or whose status it changed; a follower reads the tenant's
// ActiveModels back. The one-live, one-shadow invariant holds at every
// commit, also under concurrent writers on several nodes (the writes of a
// tenant's models are serialised, and the schema forbids a second live or
// shadow row besides).
type Models interface {
	// PutModel stores a new model version of m.Tenant with status shadow
	// (m.Status must be "" or ModelShadow, Invalid otherwise) and retires
	// the tenant's previous shadow version, if any. m.Version must be
	// exactly one more than the tenant's highest stored version (1 for its
	// first): Invalid below 1, Conflict otherwise, so a gap or a repeat
	// fails. m.Tenant must be set, m.Model JSON and m.Report nil or JSON
	// (Invalid; see CheckModel).
	// NotFound if the tenant is absent or offboarded. Appends ChangeModel
	// for the retired version first, if any, then for m.Version.
	PutModel(ctx context.Context, m Model) error
	// SetModelStatus sets a version's status. ModelLive makes it the live
	// version and retires the previous live one; ModelShadow makes it the
	// shadow version and retires the previous shadow one; ModelRetired
	// retires it. A version that already has the status is left alone and
	// no change is appended. Any status may follow any other, so a retired
	// version can be made live again (rollback). Invalid for another
	// status, NotFound if the tenant has no such version. Appends
	// ChangeModel for the displaced version first, if any, then for this.
	SetModelStatus(ctx context.Context, tenant string, version int, status string) error
	// Model returns one version with its Model and Report; NotFound if the
	// tenant has no such version.
	Model(ctx context.Context, tenant string, version int) (Model, error)
	// Models returns every version of the tenant, newest first, without
	// their Model and Report (nil, and Summary set), so listing stays
	// cheap however large the models; read one whole with Model. Empty
	// for an unknown tenant.
	Models(ctx context.Context, tenant string) ([]Model, error)
	// ActiveModels returns the tenant's live and shadow versions with
	// their Model and Report, each nil if there is none (both nil for an
	// unknown tenant).
	ActiveModels(ctx context.Context, tenant string) (live, shadow *Model, err error)
}

// Model statuses.
const (
	ModelShadow  = "shadow"  // evaluated beside the live model and recorded, not acted on
	ModelLive    = "live"    // scores the tenant's calls
	ModelRetired = "retired" // kept for audit and rollback only
)

// Model is one stored model version of a tenant.
type Model struct {
	Tenant    string
	Version   int    // 1, 2, ... per tenant
	Status    string // ModelShadow, ModelLive or ModelRetired
	Model     []byte // the trained model, JSON (opaque to the store)
	Report    []byte // its evaluation report, JSON (opaque), or nil
	TrainedAt time.Time
	CreatedAt time.Time
	CreatedBy string // who stored it: a user or service name, not personal data of callers

	// Summary is set on the versions Models returns: Model and Report were
	// not read (they are nil whatever is stored). Writes ignore it.
	Summary bool
}

// ChangeModel announces a model version inserted by Models.PutModel or
// whose status changed (PutModel retiring the previous shadow,
// SetModelStatus); Key: ModelChangeKey of the version. Read the tenant's
// ActiveModels back to apply it.
const ChangeModel ChangeKind = "model"

// ModelChangeKey is the Key of a model version's change: the version in
// decimal.
func ModelChangeKey(version int) []byte {
	return strconv.AppendInt(nil, int64(version), 10)
}

// ModelVersion reads the Key of a model change; false if it is not one.
func (c Change) ModelVersion() (int, bool) {
	if c.Kind != ChangeModel {
		return 0, false
	}
	v, err := strconv.Atoi(string(c.Key))
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// CheckModel returns an Invalid error if m breaks PutModel's rules on its
// own (tenant, version below 1, status, JSON); the version's place in the
// series is the store's to check. Backends call it first.
func CheckModel(m Model) error {
	switch {
	case m.Tenant == "":
		return call.Errorf(call.Invalid, "model: tenant is empty")
	case m.Version < 1:
		return call.Errorf(call.Invalid, "model: version must be 1 or more")
	case m.Status != "" && m.Status != ModelShadow:
		return call.Errorf(call.Invalid, "model: a new version's status must be %q", ModelShadow)
	case !json.Valid(m.Model):
		return call.Errorf(call.Invalid, "model: model is not JSON")
	case m.Report != nil && !json.Valid(m.Report):
		return call.Errorf(call.Invalid, "model: report is not JSON")
	}
	return nil
}

// CheckModelStatus returns an Invalid error unless status is ModelShadow,
// ModelLive or ModelRetired.
func CheckModelStatus(status string) error {
	switch status {
	case ModelShadow, ModelLive, ModelRetired:
		return nil
	}
	return call.Errorf(call.Invalid, "model: status must be %q, %q or %q", ModelShadow, ModelLive, ModelRetired)
}
