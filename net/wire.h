/* net/wire.h: placeholder, being written. */
#pragma once
