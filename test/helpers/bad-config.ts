// Bad values of every DINV_* variable: at least two each. Shared by the parse table and the
// launcher test that checks nothing is created before they are refused.

export const BAD_VALUES: [string, string][] = [
  ["DINV_CPUS", "abc"], ["DINV_CPUS", "0"], ["DINV_CPUS", "1.5"], ["DINV_CPUS", "65"],
  ["DINV_MEMORY", "lots"], ["DINV_MEMORY", "64M"], ["DINV_MEMORY", "-1G"], ["DINV_MEMORY", "2P"],
  ["DINV_TCP_PORTS", "0"], ["DINV_TCP_PORTS", "70000"], ["DINV_TCP_PORTS", "abc"], ["DINV_TCP_PORTS", "80;80"], ["DINV_TCP_PORTS", "90-80"], ["DINV_TCP_PORTS", "2375"],
  ["DINV_UDP_PORTS", "x"], ["DINV_UDP_PORTS", "53;53"],
  ["DINV_MOUNTS", "data"], ["DINV_MOUNTS", "/"], ["DINV_MOUNTS", "/a;/a"], ["DINV_MOUNTS", "/a\nb"], ["DINV_MOUNTS", "/a/../b"],
  ["DINV_DOCKER_SIZE", "512M"], ["DINV_DOCKER_SIZE", "big"],
  ["DINV_VOLUME_PATH", "relative"], ["DINV_VOLUME_PATH", "/var/lib/docker/x"], ["DINV_VOLUME_PATH", "/proc"],
  ["DINV_VOLUME_SIZE", "1K"], ["DINV_VOLUME_SIZE", "x"],
  ["DINV_VOLUME_UID", "-1"], ["DINV_VOLUME_UID", "root"], ["DINV_VOLUME_GID", "4294967295"], ["DINV_VOLUME_GID", "x"],
  ["DINV_DOCKER_SOCK_UID", "x"], ["DINV_DOCKER_SOCK_UID", "-5"], ["DINV_DOCKER_SOCK_GID", "1e3"], ["DINV_DOCKER_SOCK_GID", "x"],
  ["DINV_SHUTDOWN_TIMEOUT", "-1"], ["DINV_SHUTDOWN_TIMEOUT", "5s"], ["DINV_SHUTDOWN_TIMEOUT", "3601"],
  ["DINV_MACHINE", "pc"], ["DINV_MACHINE", "MICROVM"],
  ["DINV_ACCEL", "hvf"], ["DINV_ACCEL", "yes"],
  ["DINV_DOCKER_DIR", "docker"], ["DINV_DOCKER_DIR", "/a/../b"], ["DINV_RUN_DIR", "run"], ["DINV_RUN_DIR", "/run/x\ny"],
  ["DINV_VOLUME_DIR", "vol"], ["DINV_VOLUME_DIR", "/v\tx"], ["DINV_GUEST_DIR", "guest"], ["DINV_GUEST_DIR", "/g/../h"],
  ["DINV_DOCKER_SOCK", "docker.sock"], ["DINV_DOCKER_SOCK", "/var/../run/docker.sock"],
  ["DINV_CONTROL_GID", "staff"], ["DINV_CONTROL_GID", "-1"], ["DINV_CONTROL_PORT", "0"], ["DINV_CONTROL_PORT", "2375"],
  ["DINV_9P_OPTIONS", "trans=tcp"], ["DINV_9P_OPTIONS", "msize=512000;rm -rf"],
  ["DINV_DOCKER_PORT", "0"], ["DINV_DOCKER_PORT", "99999"],
  ["DINV_BIND_ADDR", "localhost"], ["DINV_BIND_ADDR", "256.0.0.1"],
  ["DINV_BIP", "172.19.0.1"], ["DINV_BIP", "172.19.0.1/33"],
  ["DINV_DOCKERD_CONFIG", "{nope"], ["DINV_DOCKERD_CONFIG", "[1,2]"], ["DINV_DOCKERD_CONFIG", '{"hosts":["tcp://0.0.0.0:1"]}'], ["DINV_DOCKERD_CONFIG", '"text"'],
  ["DINV_REGISTRY_MIRRORS", "mirror.local"], ["DINV_REGISTRY_MIRRORS", "ftp://x"],
  ["DINV_INSECURE_REGISTRIES", "http://x"], ["DINV_INSECURE_REGISTRIES", "a b"],
];
