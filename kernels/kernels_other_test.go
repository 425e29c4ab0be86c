//go:build !amd64

package kernels

func simdGemmKernels() map[string]*microKernel { return map[string]*microKernel{} }

func simdElementwise() map[string]elementwise { return map[string]elementwise{} }
