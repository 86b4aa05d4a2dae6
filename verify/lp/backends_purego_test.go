//go:build !cgo || purego

package lp

func backends() []backend {
	return []backend{{"gonum", NewGonum}}
}
