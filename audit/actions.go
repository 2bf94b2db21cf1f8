package audit

// Actions. An action names what was done as "<area>.<verb>"; the area is
// what an auditor filters on (store.AuditFilter.ActionPrefix "dsar." finds
// every privacy-rights operation). They are part of the audit log's format:
// keep them stable. docs/audit.md lists every action ringfence records;
// these constants name the common ones for callers of this package.
const (
	// Reads of personal data by a person.
	ActionCallRead   = "call.read"   // a call record (or a page of them) was shown; Object: record id(s)
	ActionCallUnmask = "call.unmask" // a record's sealed numbers or signalling were decrypted and shown
	ActionLinkRead   = "link.read"   // customer links of a caller were shown

	// Administrative changes.
	ActionListWrite    = "list.write"    // allow/deny/DNO list entries put or deleted; Object: list name
	ActionRouteWrite   = "route.write"   // a route put or deleted; Object: route id
	ActionPolicyWrite  = "policy.write"  // a tenant's policy replaced; Object: policy version
	ActionLabelWrite   = "label.write"   // an analyst's label on a record; Object: record id
	ActionTenantCreate = "tenant.create" // a tenant made; Object: tenant id
	ActionAPIKeyCreate = "apikey.create" // an API key issued; Object: key name (never the key)
	ActionAPIKeyRevoke = "apikey.revoke" // an API key revoked; Object: key name

	// Key operations.
	ActionKeysRotate = "keys.rotate" // a tenant's data key rotated; Object: tenant id, Detail: versions
	ActionKeysRewrap = "keys.rewrap" // data keys rewrapped under a new master key
	ActionKeysShred  = "keys.shred"  // a tenant's keys destroyed (crypto-shredding)

	// Data-subject rights (privacy operations). Object: the case id.
	ActionDSAROpen     = "dsar.open"     // a rights case opened
	ActionDSARIdentity = "dsar.identity" // the subject's identity check recorded
	ActionDSARExport   = "dsar.export"   // access/portability: the subject's data exported
	ActionDSARRectify  = "dsar.rectify"  // rectification applied
	ActionDSARErase    = "dsar.erase"    // erasure applied
	ActionDSARRestrict = "dsar.restrict" // processing restricted
	ActionDSARObject   = "dsar.object"   // an objection or consent withdrawal applied
	ActionDSARClose    = "dsar.close"    // a case closed, with its receipt

	// Legal holds and retention.
	ActionHoldPlace      = "hold.place"      // a legal hold placed; Object: hold id
	ActionHoldRelease    = "hold.release"    // a legal hold released; Object: hold id
	ActionRetentionPurge = "retention.purge" // a scheduled purge ran; Object: data class

	// Exports of data in bulk.
	ActionExportCalls  = "export.calls"  // call records exported (CSV/JSON); Detail: filter and count
	ActionExportLabels = "export.labels" // labels and fraud reports exported
	ActionExportAudit  = "export.audit"  // audit entries exported

	// Consortium. Object: the entry or member id.
	ActionConsortiumRead     = "consortium.read"     // consortium signal looked up by a person
	ActionConsortiumReport   = "consortium.report"   // a confirmed fraud report contributed
	ActionConsortiumWithdraw = "consortium.withdraw" // a member withdrew its report
	ActionConsortiumDispute  = "consortium.dispute"  // an entry disputed (suspended)
	ActionConsortiumRemove   = "consortium.remove"   // the controller removed an entry (rectification/erasure)
	ActionConsortiumJoin     = "consortium.join"     // a member opted in
	ActionConsortiumLeave    = "consortium.leave"    // a member opted out

	// The audit log itself.
	ActionAuditRead   = "audit.read"   // audit entries shown to a person
	ActionAuditVerify = "audit.verify" // the log verified; Detail: the report
)

// Actors. Actor strings say who acted: an API key by name, a console user
// by id, the operator at the CLI, or ringfence itself (schedules).
const (
	ActorOperator = "operator"
	ActorSystem   = "system"
)

// KeyActor is the actor of a request authenticated by the named API key.
func KeyActor(name string) string { return "key:" + name }

// UserActor is the actor of a console user, by user id.
func UserActor(id string) string { return "user:" + id }
