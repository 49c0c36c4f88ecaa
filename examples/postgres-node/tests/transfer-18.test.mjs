import { transferScenario } from '../scenario.mjs';

transferScenario(18);
