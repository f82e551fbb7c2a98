"""The gateway's pipeline: decoded reads in, wire batches per shard out (pure: no I/O, no clock).

- :mod:`~reader_gateway.pipeline.normalize`: :class:`Normalizer`, the steps in order;
- :mod:`~reader_gateway.pipeline.refusals`: what it refuses and why (foreign reader, read window);
- :mod:`~reader_gateway.pipeline.clock`: each reader's clock offset, estimated from its reads;
- :mod:`~reader_gateway.pipeline.batches`: open batches per shard, cut into wire batches.
"""
