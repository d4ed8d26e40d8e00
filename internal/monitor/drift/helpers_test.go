package drift

import "github.com/ferryml/ferry/internal/monitor/drift/stats"

var (
	statsKS           = stats.KS
	statsNormedW      = stats.NormedWasserstein
	statsPSIDeciles   = stats.PSIDeciles
	statsKSAsymptotic = stats.KSAsymptoticP
)
