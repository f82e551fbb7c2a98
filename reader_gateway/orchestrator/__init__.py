"""The gateway process, by job: :mod:`.gateway` (the :class:`~.gateway.Gateway`, its steps in
order), :mod:`.intake` (decode, count per reader, normalize), :mod:`.cutter` (batches into the
spool, raw messages acknowledged once spooled), :mod:`.publisher` (the publish window and
stored confirmations), :mod:`.status` (reader status) and :mod:`.records` (the spool record).
"""
