"""The server's routes, one module per API: :mod:`.compat` (the original ``/run_inference/``), :mod:`.v1`
(the native API) and :mod:`.web` (the jam's pages)."""
