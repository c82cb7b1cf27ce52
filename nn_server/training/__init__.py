"""Everything about training, in one package:

    status      the training status, one typed value with named transitions (no MXNet)
    supervisor  starts the trainer process from a server worker and reaps it (no MXNet)
    trainer     ``python -m nn_server.training.trainer``: the background training process
    data        training batches with the recipe's augmentation
    loop        the pure training loop, reporting through a callback
    run         one complete run: data → network → fit → evaluate → weights + record
    __main__    ``python -m nn_server.training train|evaluate``

Importing this package loads nothing heavy; the server imports ``status`` and
``supervisor`` only, so its main process never loads MXNet.
"""
