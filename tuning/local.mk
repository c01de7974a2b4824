# tuning/local.mk: machine tuning scripts (doctor, hugepage reservation).
dist_noinst_SCRIPTS += tuning/doctor tuning/hugepages
