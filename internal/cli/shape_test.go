package cli

import (
	"strings"
	"testing"
)

func TestConformShape(t *testing.T) {
	tests := []struct {
		data, model []int
		want        []int  // nil: error
		err         string // part of the error
	}{
		{[]int{1, 28, 28}, []int{1, 28, 28}, []int{1, 28, 28}, ""},
		{[]int{784}, []int{784}, []int{784}, ""},
		{[]int{5, 7}, []int{-1, 7}, []int{5, 7}, ""}, // dynamic dimension
		{[]int{784}, []int{1, 28, 28}, []int{1, 28, 28}, ""},
		{[]int{1, 28, 28}, []int{784}, []int{784}, ""},
		{[]int{28, 28}, []int{1, 28, 28}, []int{1, 28, 28}, ""},
		{[]int{28, 28, 1}, []int{1, 28, 28}, []int{1, 28, 28}, ""},
		{[]int{1, 784}, []int{784}, []int{784}, ""},
		{[]int{3072}, []int{3, 32, 32}, nil, "ambiguous"},
		{[]int{32, 32, 3}, []int{3, 32, 32}, nil, "ambiguous"},
		{[]int{14, 56}, []int{28, 28}, nil, "ambiguous"},
		{[]int{784}, []int{1, 28, 27}, nil, "a sample holds 784 values, the model takes 756"},
		{[]int{784}, []int{-1, 28, 28}, nil, "dynamic dimensions"},
	}
	for _, tc := range tests {
		got, err := ConformShape(tc.data, tc.model)
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v → %v: got %v, %v; want error %q", tc.data, tc.model, got, err, tc.err)
			}
			continue
		}
		if err != nil || FmtShape(got) != FmtShape(tc.want) {
			t.Errorf("%v → %v: got %v, %v; want %v", tc.data, tc.model, got, err, tc.want)
		}
	}
}

func TestFmtShape(t *testing.T) {
	if s := FmtShape([]int{-1, 1, 28, 28}); s != "[?,1,28,28]" {
		t.Errorf("got %s", s)
	}
	if s := FmtShape(nil); s != "[]" {
		t.Errorf("got %s", s)
	}
}
