package drift

import (
	"encoding/json"
	"io"
	"time"

	"github.com/ferryml/ferry/internal/monitor/drift/stats"
)

var (
	statsKS           = stats.KS
	statsNormedW      = stats.NormedWasserstein
	statsPSIDeciles   = stats.PSIDeciles
	statsKSAsymptotic = stats.KSAsymptoticP
)

var zeroTime = time.Time{}

func (p *Profile) writeJSON(w io.Writer) { json.NewEncoder(w).Encode(p) }
