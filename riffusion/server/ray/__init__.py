"""Serving on Ray Serve: the same HTTP app as :mod:`riffusion.server`, its clips made by model replicas on
one machine or a cluster (``riffusion serve --backend ray``, a ``serve run`` config file, KubeRay).

Ray is an optional extra (``pip install -e '.[ray]'``): nothing outside this package imports it, and this
package is imported only when the Ray backend is chosen. Modules: :mod:`~riffusion.server.ray.remote` (the
ingress's worker and state), :mod:`~riffusion.server.ray.deployments` (the deployments and the
application), :mod:`~riffusion.server.ray.run` (the local cluster and the config-file builder).
"""
