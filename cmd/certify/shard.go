package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
)

// shard is this process's part of a run split over count processes: the blocks of
// pipeline.Block consecutive samples (of the run's first --count), dealt round
// robin: block b goes to shard b mod count. Whole blocks, because the pipeline
// batches samples by block and a batch's bounds may round differently with other
// rows in it: a shard of whole blocks computes exactly what the whole run does.
// Round robin, so that every shard gets a like mix of the data and a like share
// of the time.
type shard struct {
	index, count int
	from         string // where it came from: "--shard", "SLURM_ARRAY_TASK_ID", ...
}

// active reports whether the run is split at all.
func (s shard) active() bool { return s.count > 1 }

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.index, s.count) }

// parseShard parses --shard K/N (0 <= K < N).
func parseShard(v string) (shard, error) {
	k, n, ok := strings.Cut(v, "/")
	ki, err1 := strconv.Atoi(strings.TrimSpace(k))
	ni, err2 := strconv.Atoi(strings.TrimSpace(n))
	switch {
	case !ok || err1 != nil || err2 != nil:
		return shard{}, fmt.Errorf("want K/N, e.g. 0/4 (shard K of N, K from 0)")
	case ni < 1:
		return shard{}, fmt.Errorf("N = %d: want at least 1 shard", ni)
	case ki < 0 || ki >= ni:
		return shard{}, fmt.Errorf("K = %d: want 0 <= K < N = %d (shards count from 0)", ki, ni)
	}
	return shard{index: ki, count: ni, from: "--shard"}, nil
}

// resolveShard decides the run's shard: --shard when given; otherwise the index of
// a Slurm job array task (SLURM_ARRAY_TASK_ID, less SLURM_ARRAY_TASK_MIN when
// set, of SLURM_ARRAY_TASK_COUNT tasks) or of a Kubernetes Indexed Job
// (JOB_COMPLETION_INDEX, of --shards N: the Job's completions). --shards, when
// given, must agree with the count found. No shard: shard{count: 1}.
func resolveShard(flag string, shards int, getenv func(string) string) (shard, error) {
	if shards < 0 {
		return shard{}, cli.Usagef("--shards %d: want >= 1 (0: not given)", shards)
	}
	agree := func(s shard) (shard, error) {
		if shards > 0 && shards != s.count {
			return shard{}, cli.Usagef("--shards %d, but %s says %d shards", shards, s.from, s.count)
		}
		return s, nil
	}
	if flag != "" {
		s, err := parseShard(flag)
		if err != nil {
			return shard{}, cli.Usagef("--shard %q: %v", flag, err)
		}
		return agree(s)
	}
	envInt := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, cli.Usagef("environment %s=%q: not an integer", name, v)
		}
		return i, true, nil
	}
	if id, ok, err := envInt("SLURM_ARRAY_TASK_ID"); ok || err != nil {
		if err != nil {
			return shard{}, err
		}
		count, ok, err := envInt("SLURM_ARRAY_TASK_COUNT")
		if err != nil {
			return shard{}, err
		}
		if !ok {
			return shard{}, cli.Usagef("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: give --shard K/N")
		}
		low, _, err := envInt("SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return shard{}, err
		}
		s := shard{index: id - low, count: count, from: "SLURM_ARRAY_TASK_ID"}
		if s.index < 0 || s.index >= s.count {
			return shard{}, cli.Usagef("SLURM_ARRAY_TASK_ID=%d (min %d) is not one of %d consecutive tasks: use --array=0-%d (no step), or give --shard K/N", id, low, count, count-1)
		}
		return agree(s)
	}
	if id, ok, err := envInt("JOB_COMPLETION_INDEX"); ok || err != nil {
		if err != nil {
			return shard{}, err
		}
		if shards == 0 {
			return shard{}, cli.Usagef("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give --shards N, the Job's completions")
		}
		if id < 0 || id >= shards {
			return shard{}, cli.Usagef("JOB_COMPLETION_INDEX=%d: want 0 <= index < --shards %d", id, shards)
		}
		return shard{index: id, count: shards, from: "JOB_COMPLETION_INDEX"}, nil
	}
	if shards > 1 {
		return shard{}, cli.Usagef("--shards %d without a shard index: give --shard K/N, or run as a Slurm array task or Kubernetes Indexed Job", shards)
	}
	return shard{count: 1}, nil
}

// take keeps the shard's rows of x and labels (the run's first samples, data-file
// rows 0..n-1) and returns them with their data-file indices. A shard past the
// run's last block is empty.
func (s shard) take(x *nets.Tensor, labels []int) (*nets.Tensor, []int, []int, error) {
	n := x.Shape[0]
	if !s.active() {
		return x, labels, nil, nil
	}
	rows := []int{} // a shard may be empty: its report merges like any other
	for p := 0; p < n; p++ {
		if (p/pipeline.Block)%s.count == s.index {
			rows = append(rows, p)
		}
	}
	per := x.Len() / max(n, 1)
	sub := nets.NewTensor(append([]int{len(rows)}, x.Shape[1:]...)...)
	ls := make([]int, len(rows))
	for t, r := range rows {
		copy(sub.Data[t*per:(t+1)*per], x.Data[r*per:(r+1)*per])
		ls[t] = labels[r]
	}
	return sub, ls, rows, nil
}

// record marks rep as the shard's part of a run of total samples.
func (s shard) record(rep *pipeline.Report, total int) {
	if s.active() {
		rep.Shard = &pipeline.Shard{Index: s.index, Count: s.count, Samples: total}
	}
}

// outputPath is where a shard writes the output file path: path with ".K-of-N"
// before its extension (out.json -> out.2-of-8.json), so that the tasks of a job
// array, which all run the same command line, do not overwrite each other's
// files. "-" (stdout) and "" stay as they are.
func (s shard) outputPath(path string) string {
	if !s.active() || path == "" || path == "-" {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s.%d-of-%d%s", strings.TrimSuffix(path, ext), s.index, s.count, ext)
}
