# torch_deit.py THREADS N times a DeiT-S-shaped torchvision VisionTransformer
# (197 tokens, no distillation token) on one random image, N images after 3
# warm-ups, and prints the result as a Go benchmark line, so that benchstat
# can set it beside vitflow's BenchmarkForwardDeiTSmall.
import sys, time, torch
from torchvision.models.vision_transformer import VisionTransformer

threads, n = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(threads)
m = VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=6,
                      hidden_dim=384, mlp_dim=1536, num_classes=1000).eval()
x = torch.randn(1, 3, 224, 224)
with torch.inference_mode():
    for _ in range(3):
        m(x)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        m(x)
    wall, cpu = (time.perf_counter() - t) / n, (time.process_time() - c) / n
print(f"BenchmarkTorchForwardDeiTSmall/threads={threads} {n} {wall*1e9:.0f} ns/op {wall*1e3:.2f} ms/image {cpu*1e3:.2f} cpu-ms/image")
