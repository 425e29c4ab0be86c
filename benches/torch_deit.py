# torch_deit.py THREADS N [KEEP] times a DeiT-S-shaped torchvision
# VisionTransformer (197 tokens, no distillation token) on one random image,
# N images after 3 warm-ups, and prints the result as a Go benchmark line, so
# that benchstat can set it beside vitflow's BenchmarkForwardDeiTSmall.
# With KEEP < 1 it drops tokens as vitflow's reference forward does in layers
# 2, 6 and 9: it keeps the ceil(KEEP*(n-1)) patch tokens that the heads'
# average CLS attention ranks highest and fuses the others into one token,
# their sum weighted by that attention.
import math, sys, time, torch
from torchvision.models.vision_transformer import VisionTransformer

threads, n = int(sys.argv[1]), int(sys.argv[2])
keep = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
td_layers = {2, 6, 9}
torch.manual_seed(0)
torch.set_num_threads(threads)
m = VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=6,
                      hidden_dim=384, mlp_dim=1536, num_classes=1000).eval()
x = torch.randn(1, 3, 224, 224)


def forward_dropping(m, img):
    x = m._process_input(img)
    x = torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1)
    x = x + m.encoder.pos_embedding
    for i, block in enumerate(m.encoder.layers):
        y = block.ln_1(x)
        drop = i in td_layers
        y, w = block.self_attention(y, y, y, need_weights=drop)
        x = x + y
        tokens = x.shape[1] - 1
        k = min(tokens, math.ceil(keep * tokens - 1e-9))
        if drop and k < tokens:
            scores = w[:, 0, 1:]  # the heads' average CLS attention
            top = scores.topk(k, dim=1).indices
            patches = x[:, 1:]
            kept = patches.gather(1, top.unsqueeze(-1).expand(-1, -1, x.shape[2]))
            dropped = torch.ones_like(scores).scatter_(1, top, 0.0)
            fused = ((scores * dropped).unsqueeze(-1) * patches).sum(1, keepdim=True)
            x = torch.cat([x[:, :1], kept, fused], dim=1)
        x = x + block.mlp(block.ln_2(x))
    return m.heads(m.encoder.ln(x)[:, 0])


run = m if keep >= 1 else (lambda img: forward_dropping(m, img))
name = "dense" if keep >= 1 else f"k={keep:g}"
with torch.inference_mode():
    for _ in range(3):
        run(x)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        run(x)
    wall, cpu = (time.perf_counter() - t) / n, (time.process_time() - c) / n
print(f"BenchmarkTorchForwardDeiTSmall/{name}/threads={threads} {n} {wall*1e9:.0f} ns/op {wall*1e3:.2f} ms/image {cpu*1e3:.2f} cpu-ms/image")
