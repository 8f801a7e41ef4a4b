package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/topic"
)

// Rehearsal mode: a box switched to rehearsal signs every sale into a
// ledger of its own (RehearsalDB, in the Rehearsal domain) instead of the
// sales ledger, so that a dress rehearsal with every payment rail leaves
// the real chain, its head and its uplink exactly as they were. The mode
// is kept in a file in the data dir, so a restart mid-rehearsal stays in
// rehearsal.

// Files in the data dir.
const (
	RehearsalDB      = "rehearsal.db"
	RehearsalKeyFile = "rehearsal.key"
	ModeFile         = "rehearsal.json"
)

// RehearsalCodePrefix starts every code (QR and CODE128) on a label
// printed in rehearsal, so that scanning one never finds a real sale.
const RehearsalCodePrefix = "REHEARSAL:"

// Mode is whether the box sells for real or rehearses, as kept in
// ModeFile.
type Mode struct {
	Rehearsal bool      `json:"rehearsal"`
	Since     time.Time `json:"since,omitzero"`
	By        string    `json:"by,omitempty"`
}

// ErrNoRehearsal: the service was built without a rehearsal ledger.
var ErrNoRehearsal = errors.New("rehearsal mode is not available here (the agent opens the rehearsal ledger)")

// ReadMode reads the mode kept in dataDir; no file is real selling.
func ReadMode(dataDir string) (Mode, error) {
	path := filepath.Join(dataDir, ModeFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Mode{}, nil
	}
	if err != nil {
		return Mode{}, fmt.Errorf("rehearsal mode: %w", err)
	}
	var m Mode
	if err := decodeStrict(b, &m, ""); err != nil {
		return Mode{}, fmt.Errorf("rehearsal mode file %s: %w; delete it to sell for real, or switch again", path, err)
	}
	return m, nil
}

// writeMode replaces the mode file durably (write, fsync, rename, fsync
// the directory): a power cut leaves the old mode or the new, never none.
func writeMode(dataDir string, m Mode) error {
	b, _ := json.Marshal(m)
	path := filepath.Join(dataDir, ModeFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rehearsal mode: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dataDir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rehearsal mode: %w", err)
	}
	return nil
}

// openRehearsal opens the rehearsal ledger beside the sales ledger, with
// its own key: rotating or restoring the sales key never touches it.
func (s *Service) openRehearsal() (*Ledger, error) {
	l, err := Open(Options{
		Path: filepath.Join(s.d.DataDir, RehearsalDB), KeyFile: filepath.Join(s.d.DataDir, RehearsalKeyFile),
		Box: s.d.Box, Currency: s.cfg.Currency, DiscreetDefault: s.cfg.DiscreetDefault,
		DiskBudget: int64(s.cfg.DiskBudgetMB) << 20, Clock: s.d.Clock, Sync: s.d.Sync, BootID: s.d.BootID,
		Bus: s.d.Bus, Log: s.d.Log.With("ledger", "rehearsal"), LabelOutbox: s.d.LabelOutbox, Domain: Rehearsal,
	})
	if err != nil {
		return nil, fmt.Errorf("rehearsal ledger: %w", err)
	}
	return l, nil
}

// RehearsalLedger is the rehearsal ledger (nil without Deps.Rehearsal).
func (s *Service) RehearsalLedger() *Ledger { return s.reh }

// Mode is the box's current mode.
func (s *Service) Mode() Mode {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	return s.mode
}

// Rehearsing says whether sales go to the rehearsal ledger now.
func (s *Service) Rehearsing() bool { return s.Mode().Rehearsal }

// SetMode switches the box into rehearsal (on) or back to real selling,
// keeping the mode across restarts. Who may switch is the caller's
// business (the API: crew on, admin off).
func (s *Service) SetMode(on bool, by string) (Mode, error) {
	if s.reh == nil {
		return Mode{}, ErrNoRehearsal
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if s.mode.Rehearsal == on {
		return s.mode, nil
	}
	m := Mode{Rehearsal: on, By: by}
	if on {
		m.Since = s.d.Clock.Now().UTC()
	}
	if err := writeMode(s.d.DataDir, m); err != nil {
		return s.mode, err
	}
	s.mode = m
	if on {
		s.log.Warn("REHEARSAL MODE ON: sales are signed into the rehearsal ledger, not the sales ledger", "by", by)
	} else {
		s.log.Info("rehearsal mode off: sales are real again", "by", by)
	}
	if s.d.Bus != nil {
		b, _ := json.Marshal(m)
		s.d.Bus.Publish(topic.ReceiptsRehearsal, b)
	}
	return m, nil
}

// RehearsalStatus is the mode with both ledgers' heads.
type RehearsalStatus struct {
	Mode
	Available bool  `json:"available"`
	Real      *Head `json:"real_head,omitempty"`
	Ledger    *Head `json:"rehearsal_head,omitempty"`
}

// RehearsalStatus reads the mode and both heads.
func (s *Service) RehearsalStatus(ctx context.Context) RehearsalStatus {
	st := RehearsalStatus{Mode: s.Mode(), Available: s.reh != nil}
	if h, err := s.l.Head(ctx); err == nil {
		st.Real = &h
	}
	if s.reh != nil {
		if h, err := s.reh.Head(ctx); err == nil {
			st.Ledger = &h
		}
	}
	return st
}

// rehearsalRoutes: anyone with the crew role may start a rehearsal; only
// the admin may make sales real again, since that is what a rehearsal
// that was never meant to end looks like from the outside.
func (s *Service) rehearsalRoutes(r *httpapi.Router) {
	r.HandleFunc("GET /api/rehearsal", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, s.RehearsalStatus(r.Context()))
	})
	r.HandleFunc("POST /api/rehearsal/on", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		s.switchMode(w, r, true)
	})
	r.HandleFunc("POST /api/rehearsal/off", httpapi.Admin, func(w http.ResponseWriter, r *http.Request) {
		s.switchMode(w, r, false)
	})
	r.HandleFunc("GET /api/rehearsal/receipts", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		if s.reh == nil {
			httpapi.Error(w, http.StatusConflict, ErrNoRehearsal.Error())
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if _, err := s.reh.Export(r.Context(), w, 0, 0); err != nil {
			s.log.Warn("rehearsal export interrupted", "err", err)
		}
	})
}

func (s *Service) switchMode(w http.ResponseWriter, r *http.Request, on bool) {
	by := ""
	if s.d.Who != nil {
		by = s.d.Who(r)
	}
	if _, err := s.SetMode(on, by); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNoRehearsal) {
			code = http.StatusConflict
		}
		httpapi.Error(w, code, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, s.RehearsalStatus(r.Context()))
}

// checkMode holds the pre-show gate while the box rehearses: a show sold
// into the rehearsal ledger would be revenue that never syncs.
func (s *Service) checkMode(context.Context) doctor.Result {
	return CheckMode(s.Mode())
}

// CheckMode is the pre-show check of the mode m.
func CheckMode(m Mode) doctor.Result {
	if m.Rehearsal {
		return doctor.Warnf("switch rehearsal off (admin) on the crew page or with: firmware-agent rehearsal off",
			"REHEARSAL MODE since %s: sales go to the rehearsal ledger and never sync", m.Since.Format(time.RFC3339))
	}
	return doctor.Pass("selling for real")
}
