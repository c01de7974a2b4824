/* io/pool.h: placeholder, being written. */
#pragma once
