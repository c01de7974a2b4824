/* net/server.h: placeholder, being written. */
#pragma once
