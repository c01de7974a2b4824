/* core/shardlog.h: placeholder, being written. */
#pragma once
