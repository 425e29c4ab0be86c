package kernels

func simdGemmKernels() map[string]*microKernel {
	ks := map[string]*microKernel{}
	if hasAVX2 {
		ks["avx2-6x16"] = &microKernel{mr: 6, nr: 16, run: gemmKernel6x16}
	}
	if hasAVX512 {
		ks["avx512-12x32"] = &microKernel{mr: 12, nr: 32, run: gemmKernel12x32}
		ks["avx512-8x48"] = gemm8x48
	}
	return ks
}
