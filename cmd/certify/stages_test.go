package main

import (
	"strings"
	"testing"
)

func TestParseStages(t *testing.T) {
	known := map[string]int{"ibp": 0, "crown": 1}
	tests := []struct {
		list string
		want string // joined names, or the error's text
		ok   bool
	}{
		{"none", "", true},
		{"ibp", "ibp", true},
		{"crown, ibp", "crown,ibp", true},
		{"", `empty method name in "" (valid: none, crown, ibp)`, false},
		{"ibp,", "empty method name", false},
		{"lp", `unknown method "lp" (valid: none, crown, ibp)`, false},
		{"ibp,ibp", `method "ibp" listed twice`, false},
		{"ibp,none", `"none" cannot be combined`, false},
	}
	for _, tc := range tests {
		got, err := parseStages("method", tc.list, known)
		if tc.ok {
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Errorf("%q: %v, %v; want %q", tc.list, got, err, tc.want)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.list, err, tc.want)
		}
	}
}
