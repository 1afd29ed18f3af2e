import { upgradeFaultMatrix } from './support/upgrade-fault-matrix.ts';

upgradeFaultMatrix('swap');
