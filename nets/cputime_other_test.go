//go:build !unix

package nets

import "time"

// processCPU is unavailable here: benchmarks then omit their per-CPU-second figures.
func processCPU() time.Duration { return 0 }
