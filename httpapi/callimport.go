package httpapi

import (
	"errors"
	"mime"
	"net/http"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

// callImportFailure is the answer to an import that stopped part-way: the
// error, and what was done before it (rows committed stay committed).
type callImportFailure struct {
	Error errorDetail `json:"error"`
	node.CallImportResult
}

// importCalls is POST /v1/calls/import: a tenant's call history with
// labels, as text/csv or application/x-ndjson (see node.ImportCalls), at
// most MaxImport bytes. It answers 200 with {"imported", "already_imported",
// "rejected_count", "rejected": [{"line", "message"}]}; an import that
// stops part-way answers the error with those counts beside it.
func (s *Server) importCalls(w http.ResponseWriter, r *http.Request) {
	var format node.CallFormat
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "text/csv":
		format = node.CallsCSV
	case "application/x-ndjson", "application/ndjson":
		format = node.CallsNDJSON
	default:
		s.fail(w, r, call.Errorf(call.Invalid, "Content-Type: must be text/csv or application/x-ndjson"))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxImport)
	res, err := s.node.ImportCalls(r.Context(), tenantOf(r), body, format)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		err = call.Errorf(call.TooLarge, "body: larger than %d bytes; split the file (%d rows were imported before the limit)", s.cfg.MaxImport, res.Imported)
	}
	if err != nil {
		if res.Imported == 0 && res.AlreadyImported == 0 && res.RejectedCount == 0 {
			s.fail(w, r, err)
			return
		}
		if call.ErrorCode(err) == call.Internal {
			s.log.Error("internal error", "route", r.Pattern, "err", err)
		}
		code := call.ErrorCode(err)
		st, ok := status[code]
		if !ok {
			st, code = http.StatusInternalServerError, call.Internal
		}
		writeJSON(w, st, callImportFailure{Error: errorDetail{Code: code, Message: call.ErrorMessage(err)}, CallImportResult: res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
