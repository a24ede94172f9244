#!/bin/bash
# Per-kernel profile of one edgewise command: perf samples attributed to the innermost
# edgewise_core function of each sample's inline chain (addr2line -i), which perf report cannot
# do for inlined kernels. Used for BENCHMARKS.md, section "FMA version", "Where the time goes".
# Caveat: identical-code folding and inlined debug info can credit samples to unrelated functions
# (seen: optim::adam::step_sizes in a bench run); read it beside `perf annotate`.
#
#   benches/profile.sh target/release/edgewise bench --arch 784-32-32-32-10 --n 1000 --threads 1 --repeats 30 --power-steps 1
b=$(readlink -f "$1"); shift
perf record -q -o /tmp/prof.data -- $b "$@" >/dev/null 2>&1
base=$(perf script -i /tmp/prof.data --show-mmap-events 2>/dev/null | grep "MMAP" | grep "r-xp $b\$" | head -1 | sed -E 's/.*\[(0x[0-9a-f]+)\(0x[0-9a-f]+\) @ (0x[0-9a-f]+) .*/\1 \2/')
set -- $base
perf script -i /tmp/prof.data -F ip 2>/dev/null | python3 -c "
import sys
lo,off=int('$1',16),int('$2',16)
for l in sys.stdin:
    a=int(l.strip(),16)
    if a>=lo: print(hex(a-lo+off))
" | sort | uniq -c > /tmp/prof.ips
awk '{print $2}' /tmp/prof.ips > /tmp/prof.addrs
addr2line -e $b -i -f -C -a $(cat /tmp/prof.addrs) > /tmp/prof.a2l 2>/dev/null
python3 - <<'PY'
import re,collections
cnt={}
for l in open('/tmp/prof.ips'):
    c,ip=l.split(); cnt[int(ip,16)]=int(c)
cur=None; fn={}; 
lines=open('/tmp/prof.a2l').read().split('\n')
i=0
while i<len(lines):
    l=lines[i]
    if l.startswith('0x'):
        cur=int(l,16); fn[cur]=[]; i+=1; continue
    if cur is not None and l and not l.startswith('/') and not l.startswith('??'):
        fn[cur].append(l)
    i+=1
agg=collections.Counter(); tot=sum(cnt.values())
for ip,c in cnt.items():
    names=fn.get(ip,[])
    name='other'
    for n in names:
        if 'edgewise_core::' in n and 'Isa' not in n and 'mul_add' not in n:
            name=re.sub(r'<.*?>','',n).replace('edgewise_core::',''); break
    else:
        if names: name=names[-1][:60]
    agg[name]+=c
for n,c in agg.most_common(18): print(f"{100*c/tot:6.2f}% {n}")
PY
