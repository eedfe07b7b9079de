"""Heavy workloads of real clients, and a runaway loop, against a Manager (docs/performance.md,
"Shaping"): run by benches/shaping.sh with the oVirt Python SDK, directly at the simulator and
through the gateway with its default rate limits.

Each workload prints one JSON line: its name, the requests it sent, the answers by status, and
its wall time.

    python shaping.py URL USER PASSWORD WORKLOAD
"""

import json
import sys
import threading
import time

import ovirtsdk4 as sdk
import ovirtsdk4.types as types


def connect(url, user, password):
    return sdk.Connection(url=url, username=user, password=password, insecure=True)


class Counted:
    """Counts the answers of the SDK calls made through it, by HTTP status."""

    def __init__(self):
        self.requests = 0
        self.statuses = {}
        self.lock = threading.Lock()

    def call(self, fn, *args, **kwargs):
        with self.lock:
            self.requests += 1
        try:
            result = fn(*args, **kwargs)
            status = 200
        except sdk.Error as error:
            result = None
            status = getattr(error, "code", None) or "error"
        with self.lock:
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        return result


def links_of(vm):
    """The attributes of a VM that the SDK can follow, as ovirt.ovirt's fetch_nested does."""
    for name in dir(vm):
        if name.startswith("_"):
            continue
        value = getattr(vm, name)
        if isinstance(value, list) and getattr(value, "href", None):
            yield value
        elif isinstance(value, types.Struct) and getattr(value, "href", None):
            yield value


def fetch_nested(connection, counted, vms, login):
    """ovirt_vm_info with fetch_nested: true: every link of every VM, followed."""
    for vm in vms[:500]:
        for link in links_of(vm):
            counted.call(connection.follow_link, link)


def inventory(connection, counted, vms, login):
    """The ovirt.ovirt inventory plugin: per VM, its cluster, tags, statistics and reported
    devices (the addresses)."""
    system = connection.system_service()
    for vm in vms[:1000]:
        service = system.vms_service().vm_service(vm.id)
        counted.call(connection.follow_link, vm.cluster)
        counted.call(service.tags_service().list)
        counted.call(service.statistics_service().list)
        counted.call(service.reported_devices_service().list)


def nics_and_disks(connection, counted, vms, login):
    """An SDK script reading every VM's nics and disk attachments."""
    system = connection.system_service()
    for vm in vms:
        service = system.vms_service().vm_service(vm.id)
        counted.call(service.nics_service().list)
        counted.call(service.disk_attachments_service().list)


def runaway(connection, counted, vms, login, seconds=60, threads=8):
    """A loop gone wrong: eight threads, each with its own connection, reading one VM over
    and over."""
    deadline = time.monotonic() + seconds

    def loop():
        own = login()
        service = own.system_service().vms_service().vm_service(vms[0].id)
        while time.monotonic() < deadline:
            counted.call(service.get)
        own.close()

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


WORKLOADS = {
    "fetch_nested": fetch_nested,
    "inventory": inventory,
    "nics_and_disks": nics_and_disks,
    "runaway": runaway,
}


def main():
    url, user, password, workload = sys.argv[1:5]
    connection = connect(url, user, password)
    counted = Counted()
    started = time.monotonic()
    vms = counted.call(connection.system_service().vms_service().list)
    WORKLOADS[workload](connection, counted, vms, lambda: connect(url, user, password))
    elapsed = time.monotonic() - started
    connection.close()
    print(
        json.dumps(
            {
                "workload": workload,
                "requests": counted.requests,
                "statuses": counted.statuses,
                "seconds": round(elapsed, 2),
                "per_second": round(counted.requests / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
