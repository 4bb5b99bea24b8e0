"""The link to libvirt: one connection service per host URI, driven from
asyncio (libvirt calls in a thread pool with a time limit, events from
libvirt's own event thread), and the rows it keeps for the domain list."""
