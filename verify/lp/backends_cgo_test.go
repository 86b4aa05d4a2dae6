//go:build cgo && !purego

package lp

func backends() []backend {
	return []backend{{"clp", NewCLP}, {"gonum", NewGonum}}
}
