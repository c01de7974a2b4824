# tuning/local.mk: machine tuning scripts (doctor, hugepage reservation), the tuning guide,
# its sysctl file and an example systemd unit.
dist_noinst_SCRIPTS += tuning/doctor tuning/hugepages
EXTRA_DIST += tuning/README.md tuning/99-sluice.conf tuning/sluiced.service
