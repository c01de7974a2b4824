/* core/batch.h: placeholder, being written. */
#pragma once
