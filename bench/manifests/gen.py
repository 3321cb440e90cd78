#!/usr/bin/python3
"""Generate the benchmark's manifests: N YAML files under apps/web, every
tenth a Deployment of registry.acme.io/acme/web (the image the job updates),
the rest workloads of other images and ConfigMaps.  Deterministic."""
import os
import sys

out = sys.argv[1]
total = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
every = int(sys.argv[3]) if len(sys.argv) > 3 else 10

DEPLOY = """# generated {i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  labels: {{app: svc-{i}, tier: backend}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: svc-{i}}}
  template:
    metadata:
      labels: {{app: svc-{i}}}
    spec:
      containers:
        - name: main
          image: {image}
          ports:
            - containerPort: 8080
          resources:
            limits: {{cpu: "500m", memory: 256Mi}}
"""
CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-{i}
data:
  key: "value {i}"
  other: |
    line one
    line two
"""

for i in range(total):
    d = os.path.join(out, "apps", "web", "group-%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    if i % every == 0:
        text = DEPLOY.format(i=i, image="registry.acme.io/acme/web:1.0.0")
    elif i % 2 == 0:
        text = DEPLOY.format(i=i, image="registry.acme.io/acme/web-worker:1.0.0")
    else:
        text = CM.format(i=i)
    with open(os.path.join(d, "m-%05d.yaml" % i), "w") as f:
        f.write(text)
