"""pyrunc-cri: a Kubernetes CRI server that runs pods through pyrunc.

The server is multi-threaded (a grpcio thread pool), so it never forks
itself into namespaces and never imports pyrunc's launcher: every
container, the pod sandboxes included, runs under its own monitor
(conmon), which calls the runtime binary, holds the container's stdio,
writes the CRI log file and records the exit code. All state lives on
disk, so pods and containers survive a restart of the server.

Modules:
  config     the TOML configuration
  server     the gRPC server and the ``pyrunc-cri`` command
  service    RuntimeService and ImageService handlers (proto <-> model)
  pods       pod sandboxes: pause container, DNS, hostname, CNI
  containers containers: create, start, stop, remove, exec, stats
  spec       CRI request + image config -> OCI config.json (pure)
  monitor    conmon and the runtime's command line
  images     the content store: import, list, remove, rootfs mounts
  layers     layer unpacking into overlay-ready directories
  network    CNI plugin invocation
  records    JSON records on disk, written atomically
  stats      cgroup statistics of a process
  events     the container event stream
  streaming  the HTTP server behind Exec, Attach and PortForward URLs
  spdy       SPDY/3.1 framing and the server side of a connection
  session    exec and attach sessions over SPDY streams
  portforward  port forwarding into a pod's network namespace
"""
