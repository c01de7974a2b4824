/* core/shard.h: placeholder, being written. */
#pragma once
